"""The API's routes, one module per resource; each builds an ``APIRouter`` whose handlers parse
the request, call one service function and render its answer."""
