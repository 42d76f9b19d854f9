"""Fill an admin form as a person would: from what the page renders. Hidden inputs are sent
as the page gave them (never filled here); visible fields keep their shown value, and empty
required ones get a value for their kind (or the test's own, by name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

TYPED_SAMPLES = {
    "email": "ops@example.com",
    "url": "https://partner.example.com/hooks",
    "number": "3",
    "date": "2031-01-01",
    "time": "10:00",
    "datetime-local": "2031-01-01T10:00",
}


@dataclass
class Control:
    tag: str
    name: str
    kind: str
    value: str
    required: bool
    checked: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)


class FormParser(HTMLParser):
    """The controls of the form with `form_id` (the admin's `<model>_form`)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.controls: list[Control] = []
        self._textarea: Control | None = None
        self._select: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or (not a.get("name") and tag != "option"):
            return
        if tag == "input":
            self.controls.append(
                Control(
                    "input",
                    a["name"],
                    a.get("type", "text"),
                    a.get("value", ""),
                    "required" in a,
                    checked="checked" in a,
                )
            )
        elif tag == "textarea":
            self._textarea = Control("textarea", a["name"], "textarea", "", "required" in a)
            self.controls.append(self._textarea)
        elif tag == "select":
            self._select = Control("select", a["name"], "select", "", "required" in a)
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self.inside:
            self.inside = False


def form_controls(html: str, form_id: str) -> list[Control]:
    parser = FormParser(form_id)
    parser.feed(html)
    return parser.controls


def filled(controls: list[Control], by_name: dict[str, str]) -> dict[str, str]:
    """What a person submits: the page's values, their own where the test names a field,
    and a value of the field's kind in every empty required one."""
    data: dict[str, str] = {}
    for control in controls:
        name = control.name
        if control.kind in ("submit", "button", "file"):
            continue
        if control.kind == "hidden":
            data[name] = control.value
        elif name in by_name:
            data[name] = by_name[name]
        elif control.kind == "checkbox":
            if control.checked:
                data[name] = control.value or "on"
        elif control.tag == "select":
            # The blank "---------" a required choice starts on is no choice: a person picks.
            chosen = [value for value, selected in control.options if selected and value]
            usable = [value for value, _ in control.options if value]
            if chosen:
                data[name] = chosen[0]
            elif control.required and usable:
                data[name] = usable[0]
        elif control.value.strip() or not control.required:
            data[name] = control.value
        else:
            data[name] = TYPED_SAMPLES.get(control.kind, f"Sample {name}")
    return data
