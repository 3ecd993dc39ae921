import unittest

from inventory import Stock, OutOfStock


class StockTest(unittest.TestCase):
    def test_receive_and_reserve(self):
        s = Stock()
        s.receive("apple", 5)
        s.reserve("apple", 3)
        self.assertEqual(s.level("apple"), 2)

    def test_never_oversells(self):
        s = Stock()
        s.receive("pear", 1)
        with self.assertRaises(OutOfStock):
            s.reserve("pear", 2)


if __name__ == "__main__":
    unittest.main()
