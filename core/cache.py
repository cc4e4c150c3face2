"""The shared cache on Redis: Django's backend, keeping its redis-py client instead of rebuilding it.

Django's Redis backend builds a new redis-py client object for every cache call, which costs more
processor time than the call itself (a session read on every request, the rate limits). A redis-py
client is safe to share between threads and holds nothing but its connection pool, so one client
per pool does the same work.
"""

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)  # the primary, or a replica to read from
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients.setdefault(index, self._client(connection_pool=self._pools[index]))
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
