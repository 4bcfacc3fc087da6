# Site settings for one button panel, kept apart from the logic (copied to the board as is).
# Buttons are wired to ground with the internal pull-up on: pressed reads 0.
PANEL_ID = "panel-1"
BUTTONS = {2: 1, 3: 2, 4: 3, 5: 4}  # GPIO pin -> rating value (smiley4: 1 very unhappy ... 4 very happy)
LED_OK = 25  # lit briefly after each tap ("thank you")
LED_WAIT = 15  # lit while taps wait for the host's acknowledgement
DEBOUNCE_MS = 30  # a press counts once the pin has read pressed for this long
RESEND_MS = 2000  # an unacknowledged tap is offered to the host again after this long
QUEUE_FILE = "taps.q"  # unacknowledged taps survive a power cut here
QUEUE_MAX = 2000  # the oldest are dropped past this, and counted in the HELLO line
