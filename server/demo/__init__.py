"""The demo: an organisation, the contacts template, and a webhook receiver to watch.

Mounted only under `loadbay demo`, never under `loadbay serve`. Its receipts live in a
database of its own, out of the product's schema.
"""

from server.demo.state import DemoState, load_state, seed

__all__ = ["DemoState", "load_state", "seed"]
