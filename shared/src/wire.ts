/** What travels with NATS messages beside the body (header names), and the transport's own events. */
import { EventEmitter } from "node:events";

export const ERROR_HEADER = "Nats-Service-Error";
export const ERROR_CODE_HEADER = "Nats-Service-Error-Code";
export const FL_CODE_HEADER = "Faultline-Error-Code";
export const TRACE_HEADER = "Faultline-Trace";

/** Transport events (retries, give-ups), for the testbed's incident record. */
export const transportEvents = new EventEmitter<{ retry: [RetryEvent]; giveUp: [GiveUpEvent] }>();
export interface RetryEvent {
  subject: string;
  attempt: number;
  reason: "timeout" | "no-responders" | "disconnected";
}
/** a request that ran out of time, after `attempts` attempts */
export interface GiveUpEvent {
  subject: string;
  attempts: number;
  code: string;
  timeoutMs: number;
}
