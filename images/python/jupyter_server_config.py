# System-wide Jupyter Server settings of the oerhub images. The spawner passes the per-user
# settings (base URL, port) on the command line; these hold for every container.
c = get_config()  # noqa: F821

# Only the hub's proxy gets in: it adds `Authorization: token <secret>` (OERHUB_SERVER_SECRET).
c.ServerApp.identity_provider_class = "oerhub_singleuser.OerhubIdentityProvider"
# The proxy passes the browser's Host header through; Jupyter's Host allow-list would refuse it.
c.ServerApp.allow_remote_access = True
# Never echo an Origin into Access-Control-Allow-Origin (Origin == Host still passes).
c.ServerApp.allow_origin_pat = "(?!)"
c.ServerApp.open_browser = False
# Students can't install extensions into the image.
c.LabApp.extension_manager = "readonly"
