"""Browser tests of the dashboard (Playwright for Python driving Debian's chromium)."""
