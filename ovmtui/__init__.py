"""ovmtui: a keyboard-driven terminal console for virtualization estates."""

__version__ = "0.1.0"
