"""The page's and the API's one translation of errors: what a remote user is told."""
import errno

import gradio as gr
import pytest

from app.serve.api import user_errors


def test_the_page_and_api_say_a_failed_write_without_server_paths():
    @user_errors
    def export():
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/flowlabel/p_media/x.mp4.partial")

    with pytest.raises(gr.Error) as said:
        export()
    assert "could not read or write a file (No space left on device)" in said.value.message
    assert "/srv" not in said.value.message
