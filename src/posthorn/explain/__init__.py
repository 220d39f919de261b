"""`posthorn explain ADDRESS`: how Posthorn would route mail to an address, step by step.

The facts come from the code the server itself uses (router, alias expansion, transport
table, DNS, retry policy); `model.py` holds them as values and `render.py` shows them.
"""
