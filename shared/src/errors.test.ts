import { describe, expect, it } from "vitest";
import { FaultlineError, NoRespondersError, NotFoundError, RequestTimeoutError, ValidationError } from "./errors.ts";

describe("errors", () => {
  it("errors - instanceof holds for the class and its ancestors only", () => {
    const nf = new NotFoundError("run", "x");
    expect(nf instanceof NotFoundError).toBe(true);
    expect(nf instanceof FaultlineError).toBe(true);
    expect(nf instanceof ValidationError).toBe(false);
    expect(new ValidationError("doc", "/a", "bad") instanceof NotFoundError).toBe(false);
    expect(new Error("plain") instanceof FaultlineError).toBe(false);
  });

  it("errors - codes are stable and name the failure", () => {
    expect(new NoRespondersError("fl.x").code).toBe("FL_ERR_NO_RESPONDERS");
    expect(new RequestTimeoutError("fl.x", 10).code).toBe("FL_ERR_TIMEOUT");
    expect(new ValidationError("scenario", "/vm/vcpus", "too big").toJSON()).toEqual({
      code: "FL_ERR_INVALID", message: "invalid scenario: /vm/vcpus: too big", path: "/vm/vcpus",
    });
  });
});
