/**
 * Live progress while the client waits: a spinner on a terminal, plain lines otherwise (so that
 * logs of CI jobs and pipes stay readable). Progress goes to standard error, build logs to standard
 * output.
 */
import type { CliIo } from './io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 80;

/** What the user sees of a wait. */
export interface Progress {
  /** the current step (`waiting for foo: running (build)`); plain output prints it once per change */
  update(text: string): void;
  /** writes build log text to standard output without tearing the spinner */
  log(text: string): void;
  /** removes the spinner (prints nothing on plain output) */
  stop(): void;
}

/** A spinner when `io`'s standard output is a terminal, else plain `text` lines on standard error. */
export function createProgress(io: CliIo): Progress {
  if (io.stdoutIsTTY !== true) {
    let last: string | undefined;
    return {
      update(text) {
        if (text === last) return;
        last = text;
        io.stderr(`${text}\n`);
      },
      log: (text) => io.stdout(text),
      stop() {},
    };
  }
  let text: string | undefined;
  let frame = 0;
  let shown = false;
  // after a log chunk that did not end a line the spinner would land in the middle of it
  let lineOpen = false;
  let timer: NodeJS.Timeout | undefined;
  const clear = () => {
    if (shown) io.stderr('\r\x1b[K');
    shown = false;
  };
  const draw = () => {
    if (text === undefined || lineOpen) return;
    io.stderr(`\r\x1b[K${FRAMES[frame % FRAMES.length]} ${text}`);
    frame++;
    shown = true;
  };
  return {
    update(next) {
      text = next;
      draw();
      if (!timer) {
        timer = setInterval(draw, FRAME_MS);
        timer.unref();
      }
    },
    log(chunk) {
      if (chunk === '') return;
      clear();
      io.stdout(chunk);
      lineOpen = !chunk.endsWith('\n');
      draw();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clear();
      text = undefined;
    },
  };
}
