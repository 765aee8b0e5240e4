"""Browser tests that drive the portal in headless Chromium, with screenshots."""
