/** api service process: QMP/HMP's role, the experimenter's HTTP control API. */
import { runService } from "@faultline/shared";
import { startApi } from "./index.ts";

await runService("api", startApi);
