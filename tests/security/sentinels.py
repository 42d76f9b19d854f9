"""Personal data and secrets planted in the world, so a test can prove none of them leaks."""

EMAIL = "sentinel.person@example.com"
PHONE = "+351910000999"
AUTH = "Bearer sentinel-auth-0f3c"
URL_TOKEN = "sentineltoken77"
SENTINELS = (EMAIL, PHONE, AUTH, URL_TOKEN)
