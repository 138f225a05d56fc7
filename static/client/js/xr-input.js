// Controllers and hands in an immersive session: grip poses, how each side is tracked,
// select/squeeze counters (cumulative: a pose lost on the unreliable channel loses no event;
// the worker turns them back into events and limits floods), thumbsticks and pointer rays.
import { quatRotate } from "./math.js";

const SIDES = ["left", "right"];
const EVENTS = ["select", "squeeze"];

function finite(values) {
  return values.every((v) => Number.isFinite(v));
}

function rigid(transform) {
  const { x, y, z } = transform.position;
  const o = transform.orientation;
  return { p: [x, y, z], q: [o.x, o.y, o.z, o.w] };
}

export class XrInput {
  constructor(session) {
    this.session = session;
    this.counts = { left: [0, 0], right: [0, 0] };
    this.dropped = 0; // poses with non-finite values, not sent
    EVENTS.forEach((type, i) => {
      session.addEventListener(type, (event) => {
        const side = event.inputSource?.handedness;
        if (this.counts[side]) this.counts[side][i]++;
      });
    });
  }

  // Everything the frame says about the hands, in the reference space `space`.
  read(frame, space) {
    const out = { hands: {}, kinds: {}, ev: {}, sticks: {}, rays: {}, buttons: {} };
    for (const source of this.session.inputSources) {
      const side = source.handedness;
      if (!SIDES.includes(side)) continue;
      out.kinds[side] = source.hand ? "hand" : "controller";
      out.ev[side] = this.counts[side].slice();
      let grip = source.gripSpace ? frame.getPose(source.gripSpace, space) : null;
      if (!grip && source.hand && frame.getJointPose) {
        const wrist = source.hand.get("wrist");
        grip = wrist ? frame.getJointPose(wrist, space) : null;
      }
      if (grip) {
        const pose = rigid(grip.transform);
        // A tracking glitch must not reach the worker (it would reject the whole pose).
        if (finite([...pose.p, ...pose.q])) out.hands[side] = pose;
        else this.dropped++;
      }
      const ray = source.targetRaySpace ? frame.getPose(source.targetRaySpace, space) : null;
      if (ray) {
        const pose = rigid(ray.transform);
        if (finite([...pose.p, ...pose.q])) out.rays[side] = { p: pose.p, dir: quatRotate(pose.q, [0, 0, -1]) };
      }
      out.buttons[side] = Array.from(source.gamepad?.buttons || [], (b) => b.pressed);
      const axes = source.gamepad?.axes;
      // xr-standard mapping: axes 2/3 are the thumbstick (0/1 the touchpad, if any).
      if (axes && axes.length >= 4) out.sticks[side] = { x: axes[2] || 0, y: axes[3] || 0 };
    }
    return out;
  }
}
