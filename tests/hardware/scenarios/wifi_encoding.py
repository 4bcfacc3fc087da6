# The ratings message for fixed presses, as the firmware builds it (compared byte for byte in the test).
import message
from journal import Press

presses = [Press(17, "0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10", 1, 1795518902113, "5f0c9a1e", 81234512, ""),
           Press(18, "a1c2b3d4-0000-4000-8000-000000000001", 4, 1795518903000, "5f0c9a1e", 81235400, "repeat"),
           Press(19, "a1c2b3d4-0000-4000-8000-000000000002", 3, 946684800000, "5f0c9a1e", 0, "")]
payload = message.ratings("panel-1", "store-042", "smiley4", "exit-north", (1795518904200, "5f0c9a1e", 81236600),
                          presses)
print("PAYLOAD " + payload.decode())
print("ISO " + " ".join(message.iso(ms) for ms in (0, 951782400000, 1795518902113, 4102444799999)))
print("SECONDS " + " ".join(message.seconds(ms) for ms in (0, 1, 10, 100, 5000, 81234512, 123456789012)))
