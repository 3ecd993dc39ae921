"""Stock levels per SKU, with reservations that never oversell."""


class OutOfStock(Exception):
    pass


class Stock:
    def __init__(self):
        self._levels = {}

    def receive(self, sku, qty):
        if qty <= 0:
            raise ValueError("qty must be positive")
        self._levels[sku] = self._levels.get(sku, 0) + qty

    def level(self, sku):
        return self._levels.get(sku, 0)

    def reserve(self, sku, qty):
        have = self.level(sku)
        if qty > have:
            raise OutOfStock(f"{sku}: want {qty}, have {have}")
        self._levels[sku] = have - qty
