"""Stateful sandbox of the sTN, Rebilly and Airalo provider APIs (see ``README.md``)."""
