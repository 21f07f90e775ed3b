# One image for the three services; compose.yaml picks the service with `dosis serve NAME`.
FROM python:3.11-slim
WORKDIR /app
COPY clients/python clients/python
COPY pyproject.toml README.md ./
COPY services services
RUN pip install --no-cache-dir ./clients/python . \
 && useradd --uid 10001 --no-create-home dosis
USER 10001
ENTRYPOINT ["dosis"]
