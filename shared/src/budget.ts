/**
 * What one run may ask of the stack. The schema bounds each field on its own; these bound the
 * products of fields, which the schema cannot express. `parseScenario` checks them, so a scenario
 * the services cannot hold is refused up front with the field and the budget named, instead of a
 * service running out of memory mid-run. Memslot sizes are not budgeted: every per-page structure
 * keeps ranges (PageSet), so a 256 GiB slot costs what a 4 KiB one does; the schema bounds them.
 */

/**
 * vCPUs × pagesPerVcpu. Each access takes 9 bytes in the vcpu service (Float64Array gfn + Uint8Array
 * flags) plus a latency sample once it faults. At this budget (256 vCPUs × 65536 pages) the workloads
 * take 144 MiB of arrays, and the vcpu service peaked at 322 MiB RSS in a real stack (bench/setup:
 * `wl 256 65536`, `stack 256 65536`): under 1 GiB per service, with room for the latency samples.
 */
export const FAULTLINE_MAX_ACCESSES = 16_777_216;

/**
 * Signal records the signals service keeps and the result reports: the sum over `signals` of the
 * vCPUs each plan targets (a plan to "all" on 256 vCPUs is 256 records).
 */
export const FAULTLINE_MAX_SIGNAL_RECORDS = 65_536;

/** gfns dropped over all `pager.drops` (each dropped gfn is carried by an invalidation message). */
export const FAULTLINE_MAX_DROPPED_GFNS = 1_048_576;

/**
 * `KVM_MEM_MAX_NR_PAGES` (include/linux/kvm_host.h): the most pages one memslot may have, (1 << 31) - 1.
 * With at most 64 memslots (the schema), guest memory is at most 64 × 8 TiB.
 */
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;
/** The largest memslot in bytes: KVM_MEM_MAX_NR_PAGES 4 KiB pages (8 TiB less 4 KiB). */
export const MAX_MEMSLOT_BYTES = KVM_MEM_MAX_NR_PAGES * 4096;
/** Guest physical addresses end below 2^52 (x86-64 MAXPHYADDR is at most 52 bits). */
export const MAX_GPA = 2 ** 52;
