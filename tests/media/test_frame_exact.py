"""Random access returns exactly what sequential decoding gives, on files whose timestamps skip,
vary, or come out of decoding order (B-frames), in every container the studio accepts."""
import shutil
import sqlite3

import numpy as np
import pytest

from app.media import files as media
from app.media.files import FrameReader, probe
from app.media.frame_index import FrameIndex
from app.studio.studio import Studio
from tests.helpers.media_fixtures import (
    GRADIO_VIDEOS,
    decode_sequentially,
    frame_signature,
    write_ffmpeg_video,
)

H264 = ["-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p", "-preset", "fast"]
FILES = {
    # name: (codec, setpts); timestamps are in units of 1/10 s (the input rate)
    "gaps.mp4": (H264, "(N+2*gte(N,5)+3*gte(N,17))/(10*TB)"),  # two jumps in time
    "vfr.mkv": (H264, "(N+N*N/30)/(10*TB)"),  # frame durations grow: variable frame rate
    "bframes.mp4": (H264, None),
    "bframes.mov": (H264, None),
    "altref.webm": (["-c:v", "libvpx-vp9", "-g", "12", "-auto-alt-ref", "1", "-lag-in-frames", "16",
                     "-b:v", "200k"], None),  # hidden alt-ref frames
    "bframes.avi": (["-c:v", "mpeg4", "-bf", "2", "-g", "12"], None),  # AVI carries no pts: B-frames
    "gaps.avi": (["-c:v", "mjpeg"], "(N+2*gte(N,5))/(10*TB)"),
}
FRAMES = 40


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("awkward")
    for name, (codec, setpts) in FILES.items():
        write_ffmpeg_video(folder / name, FRAMES, codec, setpts)
    return folder


def random_reads_match(reader, sequential, seed=0):
    order = np.random.default_rng(seed).permutation(len(sequential)).tolist()
    return [i for i in order if not np.array_equal(reader.read(i), sequential[i])]


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_frame_in_random_order_is_the_sequential_frame(made, name):
    path = made / name
    sequential = decode_sequentially(path)
    assert [frame_signature(f) for f in sequential] == list(range(FRAMES))  # the reference is right
    info = probe(path)
    assert info.frames == FRAMES and len(info.index) == FRAMES
    assert random_reads_match(FrameReader(path, "video", info.frames, info.index), sequential) == []
    # Without an index given, the reader builds one from the file when it first seeks.
    assert random_reads_match(FrameReader(path, "video", info.frames), sequential, seed=1) == []


def test_gradio_avi_whose_timestamps_skip_a_frame():
    """The probe's file: frames 100, 101, 149, 30, 120 came back one early."""
    path = GRADIO_VIDEOS / "b.avi"
    sequential = decode_sequentially(path)
    info = probe(path)
    assert info.frames == len(sequential) == 150
    assert len(set(np.diff(info.index.pts_ms).round(3))) > 1  # the premise: a timestamp gap
    reader = FrameReader(path, "video", info.frames, info.index)
    for i in (100, 101, 149, 30, 120):
        assert np.array_equal(reader.read(i), sequential[i]), f"frame {i}"
    assert random_reads_match(reader, sequential) == []


def test_seeks_are_used_not_only_decoding_from_the_start(made, monkeypatch):
    """Exact, and still fast: a jump seeks near the frame instead of decoding from frame 0."""
    path = made / "bframes.mp4"
    info = probe(path)
    opens = []
    real_open = media._open_capture
    monkeypatch.setattr(media, "_open_capture", lambda p: opens.append(p) or real_open(p))
    monkeypatch.setattr(media, "SEEK_WINDOW", 2)
    reader = FrameReader(path, "video", info.frames, info.index)
    sequential = decode_sequentially(path)
    assert random_reads_match(reader, sequential) == []
    assert len(opens) <= 3  # one open, at most a couple of fallbacks in 40 jumps


def test_a_seek_that_decodes_differently_falls_back_to_sequential(made):
    """A frame whose checksum does not match after a seek is decoded again from frame 0."""
    path = made / "gaps.mp4"
    info = probe(path)
    sequential = decode_sequentially(path)
    reader = FrameReader(path, "video", info.frames, info.index)
    reader.read(30)
    true_crc = info.index.crc32.copy()
    wrong = FrameIndex(info.index.pts_ms, true_crc ^ np.uint32(1))  # every checksum off by one bit
    reader._index = wrong
    assert np.array_equal(reader.read(3), sequential[3])  # seek, mismatch, decode in sequence
    assert reader._index is None  # in sequence it still differs: the old index is not trusted
    assert random_reads_match(reader, sequential) == []


def test_a_file_that_changed_since_import_is_reported(made, tmp_path):
    path = tmp_path / "v.mp4"
    shutil.copy(made / "bframes.mp4", path)
    reader = FrameReader(path, "video", FRAMES + 5)  # the count recorded at import
    with pytest.raises(media.MediaError, match="now decodes to 40 frames, not the 45"):
        reader.read(44)  # decoding forward runs out
    reader = FrameReader(path, "video", FRAMES + 5)
    reader.read(35)
    with pytest.raises(media.MediaError, match="now decodes to 40 frames, not the 45"):
        reader.read(2)  # a seek builds the index, which is 40 frames long


@pytest.mark.parametrize("name", ["gaps.mp4", "gaps.avi"])
def test_projects_from_before_the_index_are_served_exactly(made, tmp_path, name):
    """A project written before frame indexes existed: migrated on open, the index built on first use."""
    project = tmp_path / "old.sqlite"
    studio = Studio(project)
    media_id = studio.add_media(made / name)[0]["id"]
    studio.close()
    with sqlite3.connect(project) as db:  # back to the schema before m004, the video without an index
        db.execute("DROP TABLE frame_index")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_frame_index'")
    sequential = decode_sequentially(made / name)
    studio = Studio(project)
    assert studio.store.db.execute("SELECT COUNT(*) FROM frame_index").fetchone()[0] == 0
    order = np.random.default_rng(2).permutation(FRAMES).tolist()
    assert [i for i in order if not np.array_equal(studio.frame(media_id, i), sequential[i])] == []
    row = studio.store.db.execute("SELECT frames FROM frame_index WHERE media_id = ?", [media_id]).fetchone()
    assert row == (FRAMES,)  # built once and kept
    studio.close()


def test_the_index_survives_in_the_project(made, tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    media_id = studio.add_media(made / "vfr.mkv")[0]["id"]
    stored = studio.store.frame_index(media_id)
    studio.close()
    info = probe(made / "vfr.mkv")
    assert np.array_equal(stored.pts_ms, info.index.pts_ms) and np.array_equal(stored.crc32, info.index.crc32)
