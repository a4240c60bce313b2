"""The robot's camera, simulated: an aiortc video track whose frames are
drawn with numpy — scrolling colour bars, a square bouncing across them and
the wall-clock time with a frame counter — so a viewer sees at a glance that
the picture is live (it moves, the time runs) and how late it is.
"""

import asyncio
import fractions
import time

import numpy as np
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

VIDEO_CLOCK_RATE = 90000

# A 3x5 bitmap font: enough for a clock, a frame counter and a label.
GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", ":": "000010000010000", ".": "000000000000010",
    "-": "000000111000000", " ": "000000000000000", "#": "101111101111101",
    "W": "101101111111101", "I": "111010010010111", "M": "101111111101101",
    "Z": "111001010100111", "F": "111100110100100",
}


def draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int, color) -> None:
    """Draws `text` at (x, y) in the 3x5 font, each dot `scale` pixels wide,
    on a dark box so it reads on any background. Unknown characters are
    left blank; whatever falls outside the image is clipped."""
    h, w, _ = img.shape
    box_w = len(text) * 4 * scale + scale
    y0, y1 = max(y - scale, 0), min(y + 6 * scale, h)
    x0, x1 = max(x - scale, 0), min(x + box_w, w)
    img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] // 4)
    for i, ch in enumerate(text):
        bits = GLYPHS.get(ch, GLYPHS[" "])
        for row in range(5):
            for col in range(3):
                if bits[row * 3 + col] == "1":
                    px = x + (i * 4 + col) * scale
                    py = y + row * scale
                    img[py:min(py + scale, h), px:min(px + scale, w)] = color


class PatternTrack(VideoStreamTrack):
    """A live test picture, `width`x`height` at `fps` frames per second."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15, label: str = "WIM-Z"):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.label = label.upper()
        self.frames = 0
        self._start = None
        # Eight colour bars, twice as wide as the picture, scrolled each frame.
        bars = np.array(
            [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
             [235, 16, 235], [235, 16, 16], [16, 16, 235], [40, 40, 40]],
            dtype=np.uint8,
        )
        cols = np.repeat(bars, max(width // 4, 1), axis=0)
        self._bars = np.broadcast_to(cols[None, :, :], (height, cols.shape[0], 3)).copy()

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        # Paced by the wall clock, as aiortc's own VideoStreamTrack does.
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self.frames / self.fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = VideoFrame.from_ndarray(self.draw(self.frames), format="rgb24")
        frame.pts = int(self.frames * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.frames += 1
        return frame

    def draw(self, n: int) -> np.ndarray:
        """Frame number `n` as an RGB array."""
        w, h = self.width, self.height
        shift = (n * 4) % self._bars.shape[1]
        img = np.roll(self._bars, -shift, axis=1)[:, :w].copy()
        # A square bouncing left-right and up-down.
        side = max(h // 6, 4)
        span_x, span_y = max(w - side, 1), max(h - side, 1)
        px = abs((n * 5) % (2 * span_x) - span_x)
        py = abs((n * 3) % (2 * span_y) - span_y)
        img[py:py + side, px:px + side] = (255, 140, 0)
        scale = max(h // 80, 1)
        t = time.time()
        clock = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10) % 10}"
        draw_text(img, self.label, 2 * scale, 2 * scale, scale, (255, 255, 255))
        draw_text(img, clock, 2 * scale, h - 7 * scale, scale, (255, 255, 255))
        draw_text(img, f"F{n}", w - (len(str(n)) + 2) * 4 * scale, h - 7 * scale, scale, (255, 255, 0))
        return img
