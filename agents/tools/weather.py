"""get_weather: fixed offline data, so demos and tests give the same answer every time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from p2engine.agents.tools.registry import ToolError, tool

# city -> (temperature in Celsius, condition, humidity %)
WEATHER: dict[str, tuple[float, str, int]] = {
    "Amsterdam": (11, "light rain", 82),
    "Athens": (22, "sunny", 48),
    "Bangkok": (33, "thunderstorms", 78),
    "Barcelona": (20, "sunny", 60),
    "Beijing": (14, "hazy", 40),
    "Berlin": (9, "overcast", 71),
    "Buenos Aires": (19, "partly cloudy", 65),
    "Cairo": (29, "clear", 30),
    "Cape Town": (21, "windy", 58),
    "Chicago": (7, "windy", 62),
    "Delhi": (31, "hazy", 45),
    "Dubai": (35, "clear", 41),
    "Dublin": (10, "drizzle", 85),
    "Hong Kong": (26, "humid", 80),
    "Istanbul": (17, "partly cloudy", 67),
    "Lagos": (30, "scattered showers", 83),
    "Lima": (18, "overcast", 77),
    "Lisbon": (19, "sunny", 63),
    "London": (12, "overcast", 76),
    "Los Angeles": (24, "sunny", 50),
    "Madrid": (21, "clear", 38),
    "Mexico City": (20, "partly cloudy", 52),
    "Moscow": (3, "snow showers", 80),
    "Mumbai": (30, "humid", 79),
    "Nairobi": (23, "partly cloudy", 55),
    "New York": (13, "clear", 55),
    "Oslo": (4, "cloudy", 74),
    "Paris": (15, "partly cloudy", 68),
    "Rome": (21, "sunny", 57),
    "San Francisco": (16, "fog", 84),
    "Santiago": (22, "clear", 35),
    "Seoul": (12, "clear", 46),
    "Singapore": (31, "thunderstorms", 84),
    "Stockholm": (6, "cloudy", 73),
    "Sydney": (23, "sunny", 60),
    "Tokyo": (18, "light rain", 72),
    "Toronto": (8, "cloudy", 66),
    "Vienna": (10, "partly cloudy", 64),
    "Zurich": (9, "fog", 81),
}
_BY_KEY = {city.casefold(): city for city in WEATHER}


class WeatherArgs(BaseModel):
    city: str = Field(min_length=1, description="city name, e.g. Paris")
    unit: Literal["celsius", "fahrenheit"] = "celsius"


@tool(
    "get_weather",
    "Current weather for a city.",
    WeatherArgs,
    side_effect_free=True,
    cache_ttl=300,
)
def get_weather(args: WeatherArgs) -> dict[str, object]:
    city = _BY_KEY.get(args.city.strip().casefold())
    if city is None:
        raise ToolError(f"no weather data for '{args.city}'; known cities include Paris, Tokyo")
    celsius, condition, humidity = WEATHER[city]
    temperature = celsius if args.unit == "celsius" else round(celsius * 9 / 5 + 32, 1)
    return {
        "city": city,
        "temperature": temperature,
        "unit": args.unit,
        "condition": condition,
        "humidity": humidity,
    }
