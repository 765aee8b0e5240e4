"""Announcements and promotion banners shown on the portal, written from the promotions themselves."""
