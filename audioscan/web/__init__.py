"""The local web page: listen to what was found, judge it, retrain (``audioscan serve``)."""
