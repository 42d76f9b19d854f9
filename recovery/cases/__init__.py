"""The customer case view: every app's records about one customer, found from anything the
customer or a colleague has at hand, as one timeline with the money reconciled."""
