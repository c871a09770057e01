"""The estate's forms: a new pool, a host added or edited, its roles, its removal, a promotion.

Each is a modal dialog that answers an ``EditRequest`` (or None: cancelled). What is typed
is checked as it is saved, exactly as the estate file is at start-up (``validate``: the edit
made on the file's text and parsed), and a problem is said inside the dialog, under the
fields, without closing it. The edit itself is made by the caller, on the record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static

from ovmtui.config import HostConfig
from ovmtui.errors import OvmError
from ovmtui.model import HostRole
from ovmtui.store.estate_file import (
    AddHost,
    AddPool,
    EditHost,
    EstateEdit,
    HostSpec,
    Promote,
    RemoveHost,
    SetRoles,
)


@dataclass(frozen=True, slots=True)
class EditRequest:
    """What a dialog asks for: the edit, and the host's name typed to force a removal."""

    edit: EstateEdit
    force: str | None = None


# The edit's problem as start-up would say it, or None (the caller makes it on the file's text).
Validate = Callable[[EstateEdit], str | None]
# "Test connection" before a host is saved: the checks run (screens/connection_test.py),
# their outcome said in a line. None: not offered (the button is dimmed).
TestConnection = Callable[[HostConfig], Awaitable[str]]

_ROLES = (HostRole.MASTER, HostRole.UTILITY, HostRole.VM)


class FormDialog(ModalScreen[EditRequest | None]):
    """A form: fields, a line for what is wrong, Save and Cancel. Focus starts on the first
    field; enter in a field saves; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel"),
        Binding("ctrl+s", "save", "Save", id="form-save"),
    ]
    # One row a field (its label, a compact input): the longest form fits 80x24 whole; in a
    # smaller terminal the fields scroll, and the error and the buttons stay in sight.
    DEFAULT_CSS = """
    FormDialog { align: center middle; }
    FormDialog > #form {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    FormDialog.-danger > #form { border: thick $error; }
    FormDialog #form-title { text-style: bold; margin-bottom: 1; }
    FormDialog #form-fields { height: auto; max-height: 60vh; }
    FormDialog .form-row { height: auto; }
    FormDialog .form-label { width: 16; color: $text-muted; }
    FormDialog #form-note { color: $text-muted; margin-bottom: 1; }
    FormDialog #form-warning { color: $error; margin-bottom: 1; }
    FormDialog #form-error { color: $error; text-style: bold; height: auto; margin-top: 1; }
    FormDialog #form-error.-empty { display: none; }
    FormDialog Input { width: 1fr; }
    FormDialog Checkbox { width: auto; margin-right: 2; }
    FormDialog #host-test-result { height: auto; color: $text-muted; }
    FormDialog #form-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    FormDialog #form-buttons Button { margin-left: 2; }
    """

    title_text = ""
    save_label = "Save"
    danger = False

    def __init__(self, validate: Validate) -> None:
        super().__init__(classes="-danger" if self.danger else "")
        self._validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label(Content(self.title_text), id="form-title")
            with VerticalScroll(id="form-fields"):
                yield from self.fields()
            yield Static("", id="form-error", classes="-empty", markup=False)
            with Horizontal(id="form-buttons"):
                yield from self.extra_buttons()
                yield Button(
                    Content(self.save_label),
                    id="form-save",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )
                yield Button(Content("Cancel"), id="form-cancel", compact=True)
        yield Footer()

    def fields(self) -> ComposeResult:
        # Each form lists its own fields. Not an abc.abstractmethod: Textual's metaclass
        # does not mix with ABCMeta.
        raise NotImplementedError(f"{type(self).__name__} lists no fields")
        yield  # pragma: no cover

    def extra_buttons(self) -> ComposeResult:
        return
        yield  # pragma: no cover

    def build(self) -> EditRequest:
        """The request from the fields; ``ValueError`` says what is missing."""
        raise NotImplementedError

    def on_mount(self) -> None:
        first = next((box for box in self.query(Input) if not box.disabled), None)
        if first is not None:
            first.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-save":
            self.action_save()
        elif event.button.id == "form-cancel":
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        try:
            request = self.build()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        problem = self._validate(request.edit)
        if problem is not None:
            self.show_error(problem)
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, text: str | None) -> None:
        error = self.query_one("#form-error", Static)
        error.update(text or "")
        error.set_class(not text, "-empty")

    def value(self, field: str) -> str | None:
        """A field's text, stripped; None when empty."""
        text = self.query_one(f"#{field}", Input).value.strip()
        return text or None

    def roles(self) -> tuple[str, ...]:
        return tuple(
            role.value for role in _ROLES if self.query_one(f"#role-{role.value}", Checkbox).value
        )


def _row(label: str, *widgets: Input | Checkbox) -> Horizontal:
    """One field's row: its label, then its input (or boxes)."""
    return Horizontal(Label(Content(label), classes="form-label"), *widgets, classes="form-row")


def _field(
    label: str, value: str | None, placeholder: str, id: str, *, disabled: bool = False
) -> Horizontal:
    box = Input(value or "", placeholder=placeholder, id=id, compact=True, disabled=disabled)
    return _row(label, box)


def _role_boxes(current: Sequence[HostRole]) -> Horizontal:
    return _row(
        "Roles",
        *(
            Checkbox(role.value, role in current, id=f"role-{role.value}", compact=True)
            for role in _ROLES
        ),
    )


class PoolDialog(FormDialog):
    """`N`: a new pool, with no host yet."""

    title_text = "New pool"
    save_label = "Add pool"

    def fields(self) -> ComposeResult:
        yield _field("Name", None, "pool-a (letters, digits and . _ - @ :)", "pool-name")
        yield _field(
            "Shared storage", None, "/OVS (optional: where its hosts mount it)", "pool-storage"
        )

    def build(self) -> EditRequest:
        name = self.value("pool-name")
        if name is None:
            raise ValueError("A pool needs a name.")
        return EditRequest(AddPool(name, self.value("pool-storage")))


class HostDialog(FormDialog):
    """`A` on a pool: a new host; `e` on a host: its connection and roles."""

    def __init__(
        self,
        validate: Validate,
        *,
        pool: str,
        host: HostConfig | None = None,
        test: TestConnection | None = None,
    ) -> None:
        self._pool = pool
        self._subject = host
        self._test = test
        self.title_text = (
            f"Add a host to pool {pool}" if host is None else f"Edit host {host.name} ({pool})"
        )
        self.save_label = "Add host" if host is None else "Save"
        super().__init__(validate)

    def fields(self) -> ComposeResult:
        host = self._subject
        yield _field("Name", host.name if host else None, "ovs07", "host-name", disabled=bool(host))
        yield _field(
            "libvirt URI",
            host.libvirt if host else None,
            "qemu+ssh://root@h1/system (a libvirt host)",
            "host-libvirt",
        )
        yield _field(
            "or SSH target",
            host.ssh if host else None,
            "root@ovs7:22 (a Xen host: xm/xl over SSH)",
            "host-ssh",
        )
        yield _field(
            "  identity",
            host.identity if host else None,
            "~/.ssh/id_ed25519 (SSH; default: the agent, then keys)",
            "host-identity",
        )
        yield _field(
            "  toolstack",
            host.toolstack if host and host.toolstack != "auto" else None,
            "auto | xm | xl (SSH)",
            "host-toolstack",
        )
        yield _field(
            "  jump", host.jump if host else None, "ops@bastion (SSH, as ssh -J)", "host-jump"
        )
        yield _role_boxes(host.roles if host else ())
        yield Static(
            "No role anywhere in the pool: every host does everything.",
            id="form-note",
            markup=False,
        )
        yield Static("", id="host-test-result", markup=False)

    def extra_buttons(self) -> ComposeResult:
        button = Button(
            Content("Test connection"),
            id="host-test",
            compact=True,
            disabled=self._test is None,
        )
        button.tooltip = "every check of this host as typed, before it is saved"
        yield button

    def spec(self) -> HostSpec:
        libvirt, ssh = self.value("host-libvirt"), self.value("host-ssh")
        if libvirt is None and ssh is None:
            raise ValueError("A host needs a libvirt URI or an SSH target.")
        if libvirt is not None and ssh is not None:
            raise ValueError("Either a libvirt URI or an SSH target, not both.")
        ssh_only = [self.value(f"host-{k}") for k in ("identity", "toolstack", "jump")]
        if libvirt is not None and any(ssh_only):
            raise ValueError("Identity, toolstack and jump go with an SSH target.")
        roles = self.roles()
        return HostSpec(
            libvirt=libvirt,
            ssh=ssh,
            identity=ssh_only[0],
            toolstack=ssh_only[1],
            jump=ssh_only[2],
            roles=roles or None,
        )

    def build(self) -> EditRequest:
        spec = self.spec()
        if self._subject is not None:
            return EditRequest(EditHost(self._subject.name, spec))
        name = self.value("host-name")
        if name is None:
            raise ValueError("A host needs a name.")
        return EditRequest(AddHost(self._pool, name, spec))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # Textual calls FormDialog's handler after this one (Save, Cancel) unless prevented.
        if event.button.id == "host-test":
            event.prevent_default()
            event.stop()
            self._run_test()

    @work(exclusive=True, group="host-test")
    async def _run_test(self) -> None:
        result = self.query_one("#host-test-result", Static)
        if self._test is None:
            return
        try:
            spec = self.spec()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.show_error(None)
        config = HostConfig(
            pool=self._pool,
            name=self.value("host-name") or "new-host",
            libvirt=spec.libvirt,
            ssh=spec.ssh,
            identity=spec.identity,
            toolstack=spec.toolstack or "auto",
            jump=spec.jump,
        )
        result.update("Testing the connection...")
        try:
            result.update(await self._test(config))
        except OvmError as exc:
            result.update(f"{exc.title}: {exc}")


class RolesDialog(FormDialog):
    """A host's pool roles."""

    def __init__(self, validate: Validate, host: HostConfig) -> None:
        self._subject = host
        self.title_text = f"Roles of {host.name} (pool {host.pool})"
        super().__init__(validate)

    def fields(self) -> ComposeResult:
        yield Static(
            "master: the pool's contact point (one per pool); utility: file work on the "
            "shared storage; vm: runs guests. With no role anywhere in the pool, every host "
            "does everything.",
            id="form-note",
            markup=False,
        )
        yield _role_boxes(self._subject.roles)

    def on_mount(self) -> None:
        self.query_one(Checkbox).focus()

    def build(self) -> EditRequest:
        return EditRequest(SetRoles(self._subject.name, self.roles()))


class RemoveHostDialog(FormDialog):
    """A host out of the estate: asked first; while it runs VMs, its name typed."""

    danger = True
    save_label = "Remove"

    def __init__(self, validate: Validate, host: HostConfig, running: Sequence[str]) -> None:
        self._subject = host
        self._vms = tuple(running)
        self.title_text = f"Remove host {host.name} from pool {host.pool}?"
        super().__init__(validate)

    def fields(self) -> ComposeResult:
        yield Static(
            f"ovmtui stops watching {self._subject.name} ({self._subject.address}); the "
            "estate file keeps its previous version, and the repository what it last saw.",
            id="form-note",
            markup=False,
        )
        if self._vms:
            shown = ", ".join(self._vms[:8])
            if len(self._vms) > 8:
                shown += f" and {len(self._vms) - 8} more"
            yield Static(
                f"It runs {len(self._vms)} VM(s) as last seen: {shown}. They keep running, "
                "unwatched. Type the host's name to remove it anyway.",
                id="form-warning",
                markup=False,
            )
            yield _field("Host's name", None, f"type {self._subject.name}", "remove-name")

    def on_mount(self) -> None:
        if self._vms:
            self.query_one("#remove-name", Input).focus()
        else:
            self.query_one("#form-cancel", Button).focus()  # enter out of habit cancels

    def build(self) -> EditRequest:
        if not self._vms:
            return EditRequest(RemoveHost(self._subject.name))
        typed = self.value("remove-name")
        if typed != self._subject.name:
            raise ValueError(f"Type the host's name, {self._subject.name}, to remove it.")
        return EditRequest(RemoveHost(self._subject.name, forced=True), force=typed)


class PromoteDialog(FormDialog):
    """The master role moved to a reachable host, with the reason (journaled)."""

    save_label = "Promote"

    def __init__(self, validate: Validate, host: HostConfig, master: str | None) -> None:
        self._subject = host
        self._master = master
        self.title_text = f"Make {host.name} the master of pool {host.pool}"
        super().__init__(validate)

    def fields(self) -> ComposeResult:
        now = f"now {self._master}" if self._master else "it has none now"
        yield Static(
            f"The pool's master role moves to {self._subject.name} ({now}), in the estate "
            "file and the repository. Every other host is still driven directly.",
            id="form-note",
            markup=False,
        )
        yield _field(
            "Reason", None, "h1 lost its disks; ticket OPS-1234 (journaled)", "promote-reason"
        )

    def build(self) -> EditRequest:
        reason = self.value("promote-reason")
        if reason is None:
            raise ValueError("A reason is needed: the journal keeps it.")
        return EditRequest(Promote(self._subject.name, reason))
