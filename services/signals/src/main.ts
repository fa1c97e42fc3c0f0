/** signals service process: `kernel/signal.c` + QEMU's `pause_all_vcpus` kicks. */
import { runService } from "@faultline/shared";
import { signalsService } from "./index.ts";

await runService(signalsService);
