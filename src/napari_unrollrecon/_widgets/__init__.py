"""napari dock widgets (Qt). The run logic lives in the Qt-free :mod:`._controller`.

Nothing is imported here eagerly: napari imports ``_widgets._dock`` through the manifest only
when the dock is opened, and the headless core never imports this package.
"""
