"""One repository per aggregate: the only code that knows its tables (see ``services/repositories.py``)."""
