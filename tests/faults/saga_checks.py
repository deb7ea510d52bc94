"""The checks of a cancellation run: every event exactly once in its feed and in order per order, and every order's
status agreeing with its invoice and shipment records and with what the customers and the warehouse were told."""
from __future__ import annotations

import collections

import requests

from tests.faults.saga import Outcomes, Shop, walk_events


def _once(events, event_type: str, key: str) -> dict[int, int]:
    """order id → position of its `event_type` entry; fails when an order has it twice."""
    found: dict[int, int] = {}
    for position, kind, document in events:
        if kind == event_type:
            order_id = document[key]
            assert order_id not in found, f"{event_type} of order {order_id} twice: {found[order_id]}, {position}"
            found[order_id] = position
    return found


def check_saga(shop: Shop, outcomes: Outcomes) -> dict:
    """Assert everything agrees; return the figures."""
    orders, invoicing, shipping = (walk_events(shop[name].url) for name in ("order", "invoicing", "shipping"))
    created = _once(orders, "OrderCreated", "id")
    cancelled = _once(orders, "OrderCancelled", "id")
    accepted = {o for o, code in outcomes.cancels.items() if code == 202}
    assert set(cancelled) == accepted, "OrderCancelled entries are not exactly the cancels answered 202"
    assert all(created[o] < cancelled[o] for o in cancelled), "an OrderCancelled ahead of its OrderCreated"

    issued, invoice_cancelled = _once(invoicing, "InvoiceIssued", "order_id"), _once(invoicing, "InvoiceCancelled",
                                                                                       "order_id")
    assert set(issued) == set(created), "not exactly one InvoiceIssued per order"
    assert set(invoice_cancelled) == set(cancelled), "not exactly one InvoiceCancelled per cancelled order"
    assert all(issued[o] < invoice_cancelled[o] for o in invoice_cancelled)

    prepared, dispatched = _once(shipping, "ShipmentPrepared", "order_id"), _once(shipping, "ShipmentDispatched",
                                                                                   "order_id")
    shipment_cancelled = _once(shipping, "ShipmentCancelled", "order_id")
    refused = _once(shipping, "ShipmentCancellationRefused", "order_id")
    assert set(prepared) == set(created), "not exactly one ShipmentPrepared per order"
    answered_200 = {o for o, code in outcomes.dispatches.items() if code == 200}
    assert set(dispatched) == answered_200, (
        f"ShipmentDispatched entries but no 200: {sorted(set(dispatched) - answered_200)} "
        f"(their answers: {[outcomes.dispatches.get(o) for o in sorted(set(dispatched) - answered_200)]}); "
        f"200 but no entry: {sorted(answered_200 - set(dispatched))}")
    assert not set(dispatched) & set(shipment_cancelled), "a shipment both dispatched and cancelled"
    assert set(shipment_cancelled) | set(refused) == set(cancelled) and not set(shipment_cancelled) & set(refused)
    assert set(refused) <= set(dispatched) and all(dispatched[o] < refused[o] for o in refused)
    assert all(prepared[o] < shipment_cancelled[o] for o in shipment_cancelled)
    assert {o for o, code in outcomes.dispatches.items() if code == 409} <= set(shipment_cancelled)
    assert {o for o, code in outcomes.cancels.items() if code == 409} <= set(dispatched) - set(cancelled)

    invoices = {d["order_id"]: d for d in requests.get(shop["invoicing"].url + "/api/invoices", timeout=60).json()}
    shipments = {d["order_id"]: d for d in requests.get(shop["shipping"].url + "/api/shipments", timeout=60).json()}
    assert set(invoices) == set(shipments) == set(created), "not one invoice and one shipment per order"
    session, disagree = requests.Session(), []
    for order_id in created:
        status = session.get(f"{shop['order'].url}/api/orders/{order_id}/status", timeout=10).json()
        invoice_state, shipment_state = invoices[order_id]["state"], shipments[order_id]["state"]
        expected_cancellation = (None if order_id not in cancelled else "refused" if order_id in refused else "done")
        seen = (status["invoice"]["state"], status["shipment"]["state"],
                (status["cancellation"] or {}).get("state"))
        if seen != (invoice_state, shipment_state, expected_cancellation):
            disagree.append((order_id, seen, (invoice_state, shipment_state, expected_cancellation)))
        if invoice_state != ("cancelled" if order_id in cancelled else "issued"):
            disagree.append((order_id, "invoice", invoice_state))
    assert not disagree, f"{len(disagree)} orders disagree (status vs records): {disagree[:10]}"

    counts = collections.Counter(kind for feed in (orders, invoicing, shipping) for _, kind, _ in feed)
    return {"orders": len(created), "cancels_accepted": len(cancelled),
            "cancels_409_known_dispatched": sum(1 for c in outcomes.cancels.values() if c == 409),
            "dispatched": len(dispatched), "dispatches_409_cancelled": sum(1 for c in outcomes.dispatches.values()
                                                                           if c == 409),
            "cancellations_done": len(shipment_cancelled), "cancellations_refused": len(refused),
            "entries": dict(counts), "lost": 0, "duplicated": 0}
