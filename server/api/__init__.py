"""HTTP: the app and its lifespan (app.py), routes (routes/), the error envelope and the table
of statuses (errors.py), auth (auth.py), SSE (sse.py), how an OpenAI route answers (respond.py),
client disconnects (disconnect.py), how the server stops (shutdown.py) and middlewares
(middleware.py). The only package that chooses HTTP statuses."""
