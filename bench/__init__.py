"""`make bench`: loadbay's engine (Pyodide + arro3) against PapaParse, in the same Chromium.

Not shipped: nothing here is packaged or served by the product.
"""
