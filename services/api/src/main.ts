/** api service process: QMP/HMP's role, the experimenter's HTTP control API. */
import { runProcess } from "@faultline/shared";
import { startApi } from "./index.ts";

await runProcess("api", startApi, { ping: true });
