/** pager service process: `mm/gup.c` + `fs/userfaultfd.c` + the userspace fault handler. */
import { runService } from "@faultline/shared";
import { pagerService } from "./index.ts";

await runService(pagerService);
