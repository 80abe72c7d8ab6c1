"""A clip for tool and propagation tests: a textured square moving right on a noisy background."""
import cv2
import numpy as np

SIZE = (128, 96)  # width, height
SQUARE = 28


def square_mask(t: int, step: int = 3) -> np.ndarray:
    m = np.zeros((SIZE[1], SIZE[0]), bool)
    x = 20 + step * t
    m[34:34 + SQUARE, x:x + SQUARE] = True
    return m


def write_moving_square(path, frames=12, step=3) -> list[np.ndarray]:
    """An MJPG video (OpenCV's wheel writes no lossless codec) of a textured square moving `step`
    px per frame over a noisy background; returns the square's true mask per frame."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 80, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    texture = rng.integers(120, 255, (SQUARE, SQUARE, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE)
    masks = []
    for t in range(frames):
        frame = background.copy()
        m = square_mask(t, step)
        frame[m] = texture.reshape(-1, 3)
        writer.write(frame)
        masks.append(m)
    writer.release()
    return masks
