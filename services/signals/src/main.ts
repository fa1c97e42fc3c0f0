/** signals service process: `kernel/signal.c` + QEMU's `pause_all_vcpus` kicks. */
import { runService } from "@faultline/shared";
import { startSignals } from "./index.ts";

await runService("signals", startSignals);
