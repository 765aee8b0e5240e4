"""The phone channels: the IVR hotline (Twilio TwiML) and USSD menus, and `leb phone` to play them."""
