// The users area: find a person by any id they are known by, then their 360 view at /users/<key>.
import { Route, Routes } from "react-router-dom";
import { NotFound } from "../NotFound";
import { User360 } from "./User360";
import { UserSearch } from "./UserSearch";

export function UsersPage() {
  return (
    <Routes>
      <Route index element={<UserSearch />} />
      <Route path=":key" element={<User360 />} />
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
