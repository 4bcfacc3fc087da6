# Site settings for one Wi-Fi button panel, kept apart from the logic (copied to the board as is; edit per site).
# The device's identity, broker and opening hours come from /smileloop/device.json (written by
# `smileloop provision device new --board PORT`); central may change hours and the response interval later.
WIFI_SSID = "smileloop"
WIFI_PASSWORD = "change-me"
BUTTONS = {2: 1, 3: 2, 4: 3, 5: 4}  # GPIO -> rating value (smiley4: 1 very unhappy ... 4 very happy), to ground
LED_OK = 6  # the thank-you LED (lit THANKS_MS after a recorded press)
LED_ERROR = 7  # lit when a press could not be kept (journal full)
BUZZER = 8  # a short beep with the thank-you; None for none
BATTERY_ADC = 1  # ADC pin on a 1:2 divider from the battery; None without one
DEBOUNCE_MS = 30
THANKS_MS = 600
BOARD_DIR = "/smileloop"  # device.json and the password file
JOURNAL = "/smileloop/journal.log"
JOURNAL_MAX = 1000  # presses waiting for central's receipt; a press beyond is refused (docs/PANELS.md)
CENTRAL_CONFIG = "/smileloop/central.json"  # the last config push in force
HEARTBEAT_S = 900  # the retained status at least this often while awake
WATCHDOG_MS = 30000  # the board resets if the main loop stalls this long
