/** mmu service process: `arch/x86/kvm/mmu` + the gfn→pfn layer of `virt/kvm/kvm_main.c`. */
import { runService } from "@faultline/shared";
import { mmuService } from "./index.ts";

await runService(mmuService);
