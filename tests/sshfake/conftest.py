"""Makes the sshfake fixtures available to this package's own tests."""

from tests.sshfake.fixtures import fake_xen_estate, fake_xen_host, fake_xen_servers

__all__ = ["fake_xen_estate", "fake_xen_host", "fake_xen_servers"]
