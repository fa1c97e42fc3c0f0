/** vcpu service process: the vCPU threads (`KVM_RUN`) and the VMM's userspace loop. */
import { runService } from "@faultline/shared";
import { vcpuService } from "./index.ts";

await runService(vcpuService);
