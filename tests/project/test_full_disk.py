"""A media copy that fails half-written (a full disk) leaves nothing in the project's media
folder, names no server path, and leftovers from a crash are swept when a studio starts."""
import errno

import pytest

from app.media.files import MediaError
from app.project import store as store_module
from app.studio.studio import Studio


def disk_full_after_half(src, dst):
    """shutil.copyfile that writes half the file, then fails as a full disk does."""
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device", str(dst))


def test_a_copy_that_fails_leaves_no_partial_file_and_no_server_path(store, video_path, monkeypatch):
    monkeypatch.setattr(store_module.shutil, "copyfile", disk_full_after_half)
    with pytest.raises(MediaError) as refused:
        store.add_media(video_path, name="clip.avi")
    message = str(refused.value)
    assert message.startswith("clip.avi could not be stored in the project (No space left on device)")
    assert str(store.media_dir) not in message and ".partial" not in message and "/" not in message
    assert list(store.media_dir.iterdir()) == [] and store.list_media() == []
    monkeypatch.undo()
    assert store.add_media(video_path)["frames"] == 6  # the next try, with room, goes through


def test_leftover_partial_files_are_swept_when_a_studio_starts(tmp_path, video_path):
    studio = Studio(tmp_path / "p.sqlite")
    kept = studio.add_media(video_path)[0]
    leftover = studio.store.media_dir / "0123456789abcdef.mp4.partial"
    leftover.write_bytes(b"half a video")
    studio.close()
    studio = Studio(tmp_path / "p.sqlite")
    try:
        assert not leftover.exists()
        assert studio.store.media_file(kept["id"]).read_bytes() == video_path.read_bytes()
    finally:
        studio.close()

