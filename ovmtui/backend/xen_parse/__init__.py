"""Pure parsers of what the Xen toolstacks print: no I/O, no ssh, just text in, domain out.

One module a format (tests/data/xen/ holds the real captures each is tested on):

- :mod:`.xm_table`: ``xm list`` / ``xl list`` tables, and a reader that skips unchanged rows
- :mod:`.sxp`: the S-expression reader (``xm list -l`` and old ``xl list -l`` print SXP)
- :mod:`.sxp_domains` and :mod:`.xm_list_long`: the domains of an SXP listing
- :mod:`.xl_json`: ``xl list -l`` (JSON)
- :mod:`.info`: ``xm info`` / ``xl info``
- :mod:`.vm_cfg`: ``vm.cfg`` domain configurations (read; the writer will stand beside it)
- :mod:`.flags`: the state flags of ``xm list``, ``xl list`` and ``xentop``
- :mod:`.devices`: the notations of disks and NICs (``file:/img``, ``xvda:cdrom``, ``w!``)
- :mod:`.common`: what every parser returns (:class:`~.common.Parsed`,
  :class:`~.common.ParseIssue`, :class:`~.common.XenDomain`) and the value helpers

Every parser keeps what it could read and reports each unreadable part as a
:class:`~.common.ParseIssue` with its line; an output that is an ``Error:`` message (xm prints
its usage text after it) is one issue and no data. A value the output does not give is
``None``, never a guess; a domain without a name or a valid UUID is left out (and
reported) rather than given an invented key. UUIDs come out in one form (lower case,
dashed) whether written with dashes (xend) or without (vm.cfg, libvirt's data), so a running
domain and its vm.cfg match; MACs come out lower case with colons.
"""
