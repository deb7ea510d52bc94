"""Shipping: follows the order feed and keeps one shipment per order."""
