"""The HTML order form (Flask-WTF): field names are the contract's (`lines-0-item_id`, …)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Form, FieldList, FormField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from order_service.models import ADDRESS_MAX
from order_service.orders import QUANTITY_MAX, QUANTITY_MIN, has_xml_illegal


def xml_safe(form, field) -> None:
    """Reject characters XML 1.0 cannot carry."""
    if field.data and has_xml_illegal(field.data):
        raise ValidationError("Contains a character that is not allowed (a control character).")


def _address_field(label: str) -> StringField:
    return StringField(label, validators=[DataRequired("Required."), Length(max=ADDRESS_MAX), xml_safe])


class LineForm(Form):
    """One order line; a plain wtforms Form so the CSRF token lives only on the outer form."""

    item_id = SelectField("Item", coerce=int, validate_choice=True)
    quantity = IntegerField("Quantity", default=1, validators=[
        InputRequired("Required."),
        NumberRange(QUANTITY_MIN, QUANTITY_MAX, f"Must be from {QUANTITY_MIN} to {QUANTITY_MAX}.")])


class OrderForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int)
    shipping_street = _address_field("Street")
    shipping_zip = _address_field("ZIP code")
    shipping_city = _address_field("City")
    billing_street = _address_field("Street")
    billing_zip = _address_field("ZIP code")
    billing_city = _address_field("City")
    lines = FieldList(FormField(LineForm), min_entries=1)
    add_line = SubmitField("Add line")
    submit = SubmitField("Place order")

    def set_choices(self, customers, items) -> None:
        """Offer the customers and items that exist (and reject any other id)."""
        self.customer_id.choices = [(c.id, f"{c.first_name} {c.last_name} <{c.email}>") for c in customers]
        item_choices = [(i.id, f"{i.name} ({i.price:.2f})") for i in items]
        for line in self.lines:
            line.form.item_id.choices = item_choices
