"""The HTML order form (Flask-WTF): field names are the contract's (`lines-0-item_id`, …)."""
from __future__ import annotations

import re

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, FieldList, Form, FormField, IntegerField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, StopValidation, ValidationError

from common.contracts.fields import has_xml_illegal
from common.contracts.orders import ADDRESS_MAX, QUANTITY_MAX, QUANTITY_MIN


def xml_safe(form, field) -> None:
    """Reject characters XML 1.0 cannot carry."""
    if field.data and has_xml_illegal(field.data):
        raise ValidationError("Contains a character that is not allowed (a control character).")


def whole_number(form, field) -> None:
    """A quantity that is not a whole number gets one error saying what is wanted, not one per rule."""
    if field.process_errors:
        field.errors[:] = []
        raise StopValidation(f"Must be a whole number from {QUANTITY_MIN} to {QUANTITY_MAX}.")


def _address_field(kind: str, label: str) -> StringField:
    # The description names the address too: the error summary at the top says "Billing street: Required."
    return StringField(label, description=f"{kind} {label if label.startswith('ZIP') else label.lower()}",
                       validators=[DataRequired("Required."), Length(max=ADDRESS_MAX), xml_safe])


class LineForm(Form):
    """One order line; a plain wtforms Form so the CSRF token lives only on the outer form."""

    item_id = SelectField("Item", coerce=int, validate_choice=True)
    quantity = IntegerField("Quantity", default=1, validators=[
        whole_number, InputRequired("Required."),
        NumberRange(QUANTITY_MIN, QUANTITY_MAX, f"Must be from {QUANTITY_MIN} to {QUANTITY_MAX}.")])


class OrderForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int)
    shipping_street = _address_field("Shipping", "Street")
    shipping_zip = _address_field("Shipping", "ZIP code")
    shipping_city = _address_field("Shipping", "City")
    # Not in the contract: a form posted without it keeps working. When ticked the server copies the shipping
    # address over the billing one (in the browser, JavaScript does it and hides the billing fields).
    same_as_shipping = BooleanField("Billing address is the same as the shipping address")
    billing_street = _address_field("Billing", "Street")
    billing_zip = _address_field("Billing", "ZIP code")
    billing_city = _address_field("Billing", "City")
    lines = FieldList(FormField(LineForm), min_entries=1)
    add_line = SubmitField("Add line")
    submit = SubmitField("Place order")

    def set_choices(self, customers, items) -> None:
        """Offer the customers and items that exist (and reject any other id); options carry the price."""
        self.customer_id.choices = [SelectChoice(c.id, f"{c.first_name} {c.last_name} <{c.email}>")
                                    for c in customers]
        item_choices = [SelectChoice(i.id, f"{i.name} ({i.price:.2f})", render_kw={"data-price": f"{i.price:.2f}"})
                        for i in items]
        for line in self.lines:
            line.form.item_id.choices = item_choices

    def copy_shipping_to_billing(self) -> None:
        """Copy the shipping address over the billing one ("same as shipping")."""
        for part in ("street", "zip", "city"):
            self[f"billing_{part}"].data = self[f"shipping_{part}"].data
            self[f"billing_{part}"].raw_data = self[f"shipping_{part}"].raw_data

    def billing_fields(self) -> list:
        return [self[f"billing_{part}"] for part in ("street", "zip", "city")]


_LINE_NUMBER = re.compile(r"[0-9]{1,4}")
_LINE_FIELD = re.compile(rf"lines-({_LINE_NUMBER.pattern})-(.+)")


def is_line_number(text: str) -> bool:
    """Whether `text` names a line of the form: 0 to 9999, in ASCII digits."""
    return _LINE_NUMBER.fullmatch(text) is not None


def odd_line_fields(formdata: MultiDict) -> list[str]:
    """Posted names that WTForms would read as a line number int() refuses or that runs to thousands of digits
    ("lines-²-item_id"): our form never sends them, and the FieldList would fail on them with a 500."""
    odd = []
    for key in formdata:
        if key.startswith("lines-"):
            number = key[len("lines-"):].split("-", 1)[0]
            if number.isdigit() and not is_line_number(number):
                odd.append(key[:40])
    return odd


def without_line(formdata: MultiDict, index: int) -> MultiDict:
    """The posted fields with line `index` removed and the lines after it renumbered (lines-0, lines-1, …)."""
    kept = sorted({int(m.group(1)) for m in map(_LINE_FIELD.fullmatch, formdata) if m} - {index})
    renumber = {old: new for new, old in enumerate(kept)}
    result: MultiDict[str, str] = MultiDict()
    for key, value in formdata.items(multi=True):
        match = _LINE_FIELD.fullmatch(key)
        if match is None:
            result.add(key, value)
        elif int(match.group(1)) in renumber:
            result.add(f"lines-{renumber[int(match.group(1))]}-{match.group(2)}", value)
    return result
