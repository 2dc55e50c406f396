import { describe, expect, it } from "vitest";

import { conversationPath, parseRoute } from "./router";

describe("parseRoute", () => {
  it("knows home and conversation paths", () => {
    expect(parseRoute("/")).toEqual({ name: "home" });
    expect(parseRoute("/c/abc-123_X")).toEqual({ name: "conversation", appId: "abc-123_X" });
    expect(parseRoute("/c/abc/")).toEqual({ name: "conversation", appId: "abc" });
  });

  it("refuses ids the server would refuse", () => {
    expect(parseRoute("/c/a%20b").name).toBe("notFound");
    expect(parseRoute(`/c/${"x".repeat(65)}`).name).toBe("notFound");
    expect(parseRoute("/c/%E0%A4%A").name).toBe("notFound");
    expect(parseRoute("/elsewhere").name).toBe("notFound");
  });

  it("round-trips conversation paths", () => {
    expect(parseRoute(conversationPath("9f1c-aa"))).toEqual({ name: "conversation", appId: "9f1c-aa" });
  });
});
