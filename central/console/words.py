"""Words the console's templates translate from values (``{{ _(a.state) }}``): marked here so ``pybabel
extract`` finds them and every catalogue translates them."""

from smileloop_core.i18n import N_

ROLES = (N_("admin"), N_("manager"), N_("viewer"))
WEEKDAYS = (N_("mon"), N_("tue"), N_("wed"), N_("thu"), N_("fri"), N_("sat"), N_("sun"))
DEVICE_STATES = (N_("online"), N_("offline"), N_("silent"), N_("never seen"))
LIFECYCLE = (N_("provisioned"), N_("active"), N_("inactive"), N_("retired"))
AUDIT = (N_("opened"), N_("grouped"), N_("acknowledged"), N_("assigned"), N_("unassigned"), N_("resolved"),
         N_("reopened"), N_("recovered"), N_("escalated"), N_("owner"))
