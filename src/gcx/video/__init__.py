"""Video files in and out (PyAV), and the video side of the API."""
