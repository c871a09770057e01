"""``vm.cfg`` files read, never run, against recorded real configurations."""

from __future__ import annotations

from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg, vm_config
from ovmtui.model import Disk, Nic
from tests.backend.xen_samples import load, reasons

# --------------------------------------------------------------------------- vm.cfg


def test_exadata_vm_cfg_with_unicode_literal() -> None:
    cfg = parse_vm_cfg(load("vm_cfg/exabox-clunetworkreconfig-u-prefix.txt"))
    assert cfg.issues == ()
    assert cfg.value["maxvcpus"] == 96
    assert cfg.value["ib_pkeys"] == [
        {"pf": "3b:00.0", "port": "1", "pkey": ["0x2a34", "0xa342"]},
        {"pf": "3b:00.0", "port": "2", "pkey": ["0x2a34", "0xa342"]},
    ]
    facts = vm_config(cfg.value)
    assert facts.issues == ()
    config = facts.value
    assert config.name == "scaqae08dv0302.usdv1.oraclecloud.com"
    assert config.simple_name == "iad100527ex-342"
    assert config.uuid == "7d5c116d-c1a0-4d87-8630-3338bd8287ed"
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (12, 61440, 61440)
    assert config.os_type == "hvm"
    repo = "/OVS/Repositories/7d5c116dc1a04d8786303338bd8287ed/VirtualDisks/"
    assert config.disks == (
        Disk("xvda", repo + "7bffd44b2b864fc78061b31c97cb9956.img"),
        Disk("xvdb", repo + "a12f35939b5c4ad6936b5fb4837ca610.img"),
        Disk("xvdh", repo + "0eca4216c03540bf92ae02a84c3ecc03.img"),
        # u'file:///EXAVMIMAGES/...': the URL spelling of a path
        Disk(
            "xvdi",
            "/EXAVMIMAGES/GuestImages/scaqae08dv0302.usdv1.oraclecloud.com/u02_extra.img",
        ),
    )
    assert config.nics == (
        Nic("00:16:3e:5f:24:db", "vmbondeth0.155", "netfront"),
        Nic("00:16:3e:a7:3b:39", "vmbondeth1.129", "netfront"),
        Nic("00:16:3e:36:de:55", "vmeth104", "netfront"),
    )


def test_oracle_vm_exam_exhibit_vm_cfg() -> None:
    cfg = parse_vm_cfg(load("vm_cfg/ovm-exam-exhibit-windows-hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["OVM_high_availability"] is False
    facts = vm_config(cfg.value, "/OVS/Repositories/x/VirtualMachines/y/vm.cfg")
    config = facts.value
    assert config.name == "0004fb000006000041b397779495f2aa"
    assert config.simple_name == "guest1"
    assert config.uuid == "0004fb00-0006-0000-41b3-97779495f2aa"
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (2, 2048, 4096)
    assert config.os_type == "hvm"
    assert config.disks == (
        Disk(
            "xvda",
            "/OVS/Repositories/0004fb0000030000Bded2925b616f88d/VirtualDisks/"
            "0004fb00001200004a2ae993568910a0.img",
        ),
    )
    # "mac=..,br1": a bridge without "bridge=" is no setting xm knows.
    assert config.nics == (
        Nic("00:21:f6:bb:00:24", "192.168.0.0"),
        Nic("00:21:f6:bb:00:0d", None),
    )
    assert [str(issue) for issue in facts.issues] == [
        "/OVS/Repositories/x/VirtualMachines/y/vm.cfg: vif setting without a key: 'br1' "
        "ignored: mac=00:21:f6:bb:00:0d,br1"
    ]


def test_xm_config_with_a_disk_list_over_several_lines() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/book-of-xen-solaris-domu-multiline-disk.txt"))
    assert cfg.issues == ()
    assert cfg.value["cpu_weight"] == 1024
    config = vm_config(cfg.value).value
    assert (config.name, config.memory_mib, config.os_type) == ("rosaline", 1024, None)
    assert config.disks == (
        Disk("xvdf", "/opt/distros/osol-0811.iso", device="cdrom", read_only=True),
        Disk("xvda", "/dev/verona/rosaline"),
    )
    assert config.nics == (Nic("00:16:3e:59:a7:88", "xenbr0"),)


def test_xl_config_with_rbd_target() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xlconfig-test-rbd-multihost-noauth.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert (config.name, config.uuid) == ("XenGuest2", "c7a5fdb2-cdaf-9455-926a-d65c16db1809")
    assert (config.vcpus, config.memory_mib, config.max_memory_mib) == (1, 394, 579)
    assert config.os_type == "hvm"
    assert config.disks == (
        Disk("hda", "/dev/HostVG/XenGuest2", format="raw"),
        Disk(
            "hdb",
            "rbd:pool/image:auth_supported=none:mon_host=mon1.example.org\\:6321"
            "\\;mon2.example.org\\:6322\\;mon3.example.org\\:6322",
            format="raw",
        ),
    )
    assert config.nics == (Nic("00:16:3e:66:92:9c", "xenbr1", "e1000"),)


def test_xl_config_with_qcow_and_cdrom() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xlconfig-test-vif-rate.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert config.disks == (
        # format= as the config names it: raw, qcow2.
        Disk("hda", "/dev/HostVG/XenGuest2", format="raw"),
        Disk("hdb", "/var/lib/libvirt/images/XenGuest2-home", format="qcow2"),
        Disk("hdc", "/root/boot.iso", device="cdrom", read_only=True, format="raw"),
    )
    assert config.nics == (Nic("00:16:3e:66:92:9c", "xenbr1", "e1000"),)


def test_xm_config_paravirt_with_pygrub() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/libvirt-xmconfig-test-paravirt-new-pvfb.txt"))
    assert cfg.issues == ()
    assert cfg.value["bootloader"] == "/usr/bin/pygrub"
    config = vm_config(cfg.value).value
    assert (config.name, config.uuid) == ("XenGuest1", "c7a5fdb0-cdaf-9455-926a-d65c16db1809")
    assert config.os_type is None  # no builder: xm's default is not written down here
    assert config.disks == (Disk("xvda", "/dev/HostVG/XenGuest1"),)
    assert config.nics == (Nic("00:16:3e:66:94:9c", "br0"),)


def test_xl_config_pvh_with_comments() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/raspi4-pvh-arm64.txt"))
    assert cfg.issues == ()
    assert "ramdisk" not in cfg.value and "maxmem" not in cfg.value  # commented out
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type) == ("ubuntu-20.04", "xenpvh")
    assert (config.memory_mib, config.vcpus, config.max_memory_mib) == (256, 2, None)
    assert config.disks == (Disk("xvda", "/media/domU.img"),)
    assert config.nics == (Nic(None, "xenbr0"),)


def test_xm_config_hvm_from_a_forum() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/ubuntuforums-intrepid-hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["serial"] == "pty"  # the comment after it is no part of it
    config = vm_config(cfg.value).value
    assert (config.name, config.memory_mib, config.vcpus) == ("InrepidHVM", 1024, 1)
    assert config.disks == (
        Disk("hda", "/dev/sdb7"),
        Disk("hdc", "/etc/xen/isos/IntrepidSRV.iso", device="cdrom", read_only=True),
    )
    assert config.nics == (Nic(None, "eth0"),)


def test_xl_example_hvm() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xlexample.hvm.txt"))
    assert cfg.issues == ()
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type, config.memory_mib, config.vcpus) == (
        "example.hvm",
        "hvm",
        128,
        2,
    )
    # target,format,vdev,access
    assert config.disks == (Disk("xvda", "/dev/vg/guest-volume", format="raw"),)
    assert config.nics == (Nic(None, None),)  # vif = [ '' ]: one NIC, all defaults


def test_xm_example_hvm() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xmexample.hvm.txt"))
    assert cfg.issues == ()
    assert cfg.value["vncpasswd"] == ""
    config = vm_config(cfg.value).value
    assert (config.name, config.os_type, config.memory_mib) == ("ExampleHVMDomain", "hvm", 128)
    assert config.disks == (
        Disk("hda", "/var/images/min-el3-i386.img"),
        Disk("hdc", None, device="cdrom", read_only=True),  # ',hdc:cdrom,r'
    )
    assert config.nics == (Nic(None, "xenbr0", "ioemu"),)


def test_xm_example_with_python_code_is_read_never_run() -> None:
    cfg = parse_vm_cfg(load("xen_cfg/xen-tools-examples-xmexample2.txt"))
    assert cfg.value == {
        "kernel": "/boot/vmlinuz-2.6.10-xenU",
        "memory": 64,
        "vcpus": 4,
        "vif": [""],
        "root": "/dev/sda1 ro",
    }
    assert reasons(cfg) == [
        (23, "not a 'name = value' assignment: ignored"),
        (30, "not a 'name = value' assignment: ignored"),
        (35, "not a 'name = value' assignment: ignored"),
        (56, "value is not a literal (xm would run it as Python): ignored"),
        (102, "value is not a literal (xm would run it as Python): ignored"),
        (180, "value is not a literal (xm would run it as Python): ignored"),
    ]
    assert cfg.issues[3].text == 'name = "VM%d" % vmid'
    assert vm_config(cfg.value).value.name is None


def test_broken_config_costs_only_the_broken_assignment() -> None:
    text = (
        "name = 'a'\n"
        "disk = ['file:/x,xvda,w',\n"
        "memory = 512\n"
        "vcpus = 2\n"
        "  indented = 1\n"
        "uuid = 0755\n"
        "maxmem = __import__('os').system('id')\n"
    )
    cfg = parse_vm_cfg(text)
    assert cfg.value == {"name": "a", "memory": 512, "vcpus": 2}
    assert [line for line, _ in reasons(cfg)] == [2, 5, 6, 7]
