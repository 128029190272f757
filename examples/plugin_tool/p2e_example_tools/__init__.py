"""Tools of the example plugin; importing the module registers them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from p2engine import ToolError, tool


class TemperatureArgs(BaseModel):
    celsius: float = Field(description="degrees Celsius")


@tool(
    "convert_temperature",
    "Convert a temperature from degrees Celsius to Fahrenheit.",
    TemperatureArgs,
    side_effect_free=True,
)
def convert_temperature(args: TemperatureArgs) -> dict[str, float]:
    if args.celsius < -273.15:
        raise ToolError(f"{args.celsius} °C is below absolute zero")
    return {"celsius": args.celsius, "fahrenheit": round(args.celsius * 9 / 5 + 32, 2)}
